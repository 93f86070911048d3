package tickets

import "ticketing/db"

// ListSQL is the list query's fixed part, for EXPLAIN in tests.
const ListSQL = listSQL

// DB exposes the store's file to tests.
func (s *Store) DB() *db.DB { return s.db }
