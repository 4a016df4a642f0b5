"""What the Lambda loads: clients and deadlines, classification, the DynamoDB store, the SQS queue,
the flow runner, configuration, logs, API Gateway event shapes, the SnapStart hooks, and (when a pass
runs) the reconciler pass. Nothing here imports the checker, the suite, the local service, the
command line or the doc generators."""
