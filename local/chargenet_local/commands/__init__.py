"""The local stack's own commands, outside the operator CLI: `chargenet local up|down|status`,
`chargenet demo` (what `make run` runs) and `chargenet scenario run`. The `chargenet` entry point
registers them next to the operator commands when the local stack is installed."""
