"""REST inference on ONNX Runtime: V2 and /invocations, batching, metrics, health.

Arrives with serving; imports ``packager`` and nothing else of Quayside.
"""
