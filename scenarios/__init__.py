"""Built-in example scenarios: plain Python files following the scenario contract."""
