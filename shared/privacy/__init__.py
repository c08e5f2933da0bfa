"""Personal data protected at the source (README "Privacy model").

`keys`: the key store (one AES-256 data key per data subject and case). The rest of the
package marks personal fields on event models and seals/opens them with those keys.
"""
