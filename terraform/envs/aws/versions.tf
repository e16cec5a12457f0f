terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # No backend block: state is local (terraform/envs/aws/terraform.tfstate, git-ignored) unless you deploy with
  # BACKEND_CONFIG=<file> (see backend.hcl.example); then `python -m ops.deploy_aws` writes backend_override.tf with
  # `backend "s3" {}` and passes your file to `terraform init -backend-config`.
}
