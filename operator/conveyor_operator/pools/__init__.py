"""Worker pools: the WorkerPool resource, its Deployment, and scaling by queue depth."""
