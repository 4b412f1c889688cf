"""One TerraformStack per deployable unit. Stacks are wiring: they create constructs and pass outputs on."""
