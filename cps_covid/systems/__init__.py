"""The outside systems, one module each behind a small interface.

S3, CloudFront, SNS, the district's sources, X, Facebook, the Prefect API.
"""
