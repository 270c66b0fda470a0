"""The model package: manifest, signature, environment, flavors, ONNX conversion and parity."""
