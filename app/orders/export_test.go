package orders

import (
	"context"

	"ticketing/db"
)

// Expire exposes the expiration handler's step to tests.
func Expire(s *Store, ctx context.Context, tx *db.Tx, id string) error { return s.expire(ctx, tx, id) }
