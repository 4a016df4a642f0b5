"""sendguard's adapters: the pure model's effects carried out on DynamoDB and SQS, the Lambda entry
points, structured logs and the `sendguard` command line."""
