"""How the pipeline is stood up: the layer build, the CDK app for AWS and the local emulation."""
