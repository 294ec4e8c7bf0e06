"""tf-scaffold: generate backend-ready Hugging Face custom-code model repos."""

__version__ = "0.3.0"
