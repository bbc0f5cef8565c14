"""The Kivy terminal app (cashier and kiosk screens). Depends on pos_client, never the reverse."""
