"""One module per page of the site; _core holds the shared building blocks."""
