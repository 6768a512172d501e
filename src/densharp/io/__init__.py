"""File input and output: the only package besides ``cli`` that touches the file system."""
