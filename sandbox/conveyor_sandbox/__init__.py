"""The sandbox: a laptop-sized Conveyor with an emulated Kubernetes API (`conveyor dev`)."""
