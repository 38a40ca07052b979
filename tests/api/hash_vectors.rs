//! Imported password hashes made by other implementations (a Python peer) verify here.
