"""The Textual app and the `optdbg` command line."""
