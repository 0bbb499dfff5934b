"""ecs-ship: ship a Docker image to an AWS ECS service behind an ALB and prove it healthy."""

__version__ = "0.1.0"
