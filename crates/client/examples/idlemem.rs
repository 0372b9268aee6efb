//! Opens N connections (CONNECT + SUBSCRIBE to one room each) and holds them until
//! stdin closes; prints when all are subscribed.
//!
//! usage: idlemem WS_URL TOKEN ROOM N

use quicktalk_client::StompClient;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, room, n] = args.as_slice() else {
        anyhow::bail!("usage: idlemem WS_URL TOKEN ROOM N");
    };
    let n: usize = n.parse()?;
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = StompClient::connect(url, token).await?;
        c.subscribe_sync(&format!("s{i}"), &format!("/topic/rooms.{room}"), &[])
            .await?;
        clients.push(c);
    }
    println!("{n} connections subscribed");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    drop(clients);
    Ok(())
}
