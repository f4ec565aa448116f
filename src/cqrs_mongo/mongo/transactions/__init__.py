"""Units of work over a client session and transaction, and the runner that retries them."""
