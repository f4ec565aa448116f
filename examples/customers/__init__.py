"""A state-stored aggregate (``Customer``) kept as one versioned document by ``MongoRepository``."""
