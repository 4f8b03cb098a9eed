import FastPush
print("fastpilot: not yet")
