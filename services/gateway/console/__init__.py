"""Static files of the operations console (packaged with the service)."""
