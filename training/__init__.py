"""Training for ganpack's GAN: importable modules with no side effects; `python -m training.run` trains."""
