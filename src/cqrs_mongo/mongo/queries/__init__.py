"""The read side: specifications compiled to MongoDB, keyset cursors and read-model handlers."""
