"""Classical filters: B-factor (auto and fixed) sharpening, FSC weighting, masks."""
