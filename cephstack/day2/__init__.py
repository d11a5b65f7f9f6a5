"""Day 2: status, fencing, key rotation, the failover drill."""
