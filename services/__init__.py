"""The pipeline's Lambda functions: intake, combine, report."""
