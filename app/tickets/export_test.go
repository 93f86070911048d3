package tickets

import "ticketing/db"

// The list queries' fixed parts, for EXPLAIN in tests.
const (
	ListSQL       = listAllSQL
	ListNoShowSQL = listNoShowSQL
	ListShowSQL   = listShowSQL
)

// DB exposes the store's file to tests.
func (s *Store) DB() *db.DB { return s.db }
