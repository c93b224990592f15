"""An order service measured in zero-code mode: no import of the layer anywhere."""
