// placeholder until the ChatRoom sources land
