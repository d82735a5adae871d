"""Export a trained run to a ganpack model package (ONNX graphs + manifest). See package.py."""
