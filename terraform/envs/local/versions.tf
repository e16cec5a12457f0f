terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Local state. `ops/terraform.py` passes -backend-config=path=<state file> so each local stack (`make local-up`, the
  # end-to-end tests) keeps its own state; a bare `tflocal apply` here writes terraform.tfstate (git-ignored).
  backend "local" {}
}
