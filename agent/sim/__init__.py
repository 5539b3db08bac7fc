"""Mode S / ADS-B simulator: traffic with a known truth, as frames or as IQ.

encode.py      physical values -> Mode S frames (DF4/5/11/17) with correct parity
trajectory.py  scripted flight plans -> truth states and timed transponder replies
modulate.py    timed frames -> band-limited PPM bursts in noise, UC8 or SC16 IQ
scenario.py    the built-in demo: a strip, a light aircraft, a helicopter, an airliner
"""
