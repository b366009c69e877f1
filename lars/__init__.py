"""lars: a Lars-style service discovery and load-balancing platform in Python."""

__version__ = "0.1.0"
