"""ELF files: reading them (the only LIEF user), and what a target allows them."""
