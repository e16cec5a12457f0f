# Where the function's code comes from: the built zip (build/lambda.zip, what deploys to AWS), or, with
# hot_reload_dir set (local targets only), the working tree itself through LocalStack's hot-reload convention: the
# magic bucket "hot-reload" with the directory's absolute path as the key. LocalStack and the embedded local cloud
# then run that directory live, so a saved change takes effect at the next invocation without a build or an apply.
# Only variables go in here, no resources, so tests/tooling/test_terraform.py can evaluate it offline.

locals {
  hot_reload = var.hot_reload_dir != null

  # null when the file is missing: the preconditions in lambda.tf then say to run `make build`, while a destroy
  # (which needs no package) still works.
  lambda_zip_hash = try(filebase64sha256(var.lambda_zip_path), null)
  layer_zip_hash  = try(filebase64sha256(var.layer_zip_path), null)

  function_code = {
    filename         = local.hot_reload ? null : var.lambda_zip_path
    source_code_hash = local.hot_reload ? null : local.lambda_zip_hash
    s3_bucket        = local.hot_reload ? "hot-reload" : null
    s3_key           = local.hot_reload ? var.hot_reload_dir : null
  }
}
