"""Quantizers beyond audiocraft's: the product vector quantizer (`product.ProductVectorQuantizer`)."""
