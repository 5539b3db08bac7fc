"""GA intelligence: facts about each track beyond what it transmits.

height (AGL with its source and uncertainty), terrain (SRTM tiles), classification
(callsign kind, nationality, squawk meaning), geofences, known aerodromes, the sun,
and the per-track event detector. Tag, don't judge: each module adds facts and
reasons; the central side decides what they mean.
"""
