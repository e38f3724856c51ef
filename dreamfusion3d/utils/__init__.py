"""Small shared helpers: errors, atomic files, config files, logging and progress."""
