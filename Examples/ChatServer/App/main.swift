// placeholder until the ChatServer example lands
