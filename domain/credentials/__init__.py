"""The Credentials context: users' secrets, sealed, shared under terms, and every use recorded."""
