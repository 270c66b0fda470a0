"""Wire protocols: each turns request bodies into checked arrays and outputs back into bodies."""
