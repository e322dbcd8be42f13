"""The five Jiandu services; each folder has the same shape."""
