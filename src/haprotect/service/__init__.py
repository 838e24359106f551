"""The protection service: the daemon that carries out approved policies by itself."""
