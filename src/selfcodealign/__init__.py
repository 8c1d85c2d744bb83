"""SelfCodeAlign: self-alignment for code generation, from seeds to a verified dataset."""

__version__ = "0.1.0"
