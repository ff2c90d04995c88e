"""Images in: listing a dataset (read, tables), decoding it once into a uint8 cache (cache,
cache_integrity), the class subset and validation split (prepare), the epoch loader whose
batch order is a function of (seed, epoch) (loader), and generated demo data (synthetic).
May import: basics, config, errors.
"""
