// placeholder until the ChatServer tests land
