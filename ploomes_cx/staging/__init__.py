"""Staging layer: the raw windows turned into cleaned, deduplicated, validated tables, one per
CustomerX entity, plus the rejected rows and the duplicate clusters that explain them."""
