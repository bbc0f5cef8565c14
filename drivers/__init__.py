"""Hardware adapters (PC/SC, serial, keyboard-wedge, simulated): each yields ScanEvent.

Built on pos_client; pos_client never imports this package except from its composition root.
"""
