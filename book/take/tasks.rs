use my_crate::train::batch::batches_by_length;
use my_crate::train::tasks::Task;
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    let task = Task::by_name("translate", 1).unwrap(); // the book's toy translation task
    let src = task.vocab.encode("the big dog sees a small cat").unwrap();
    println!("{}", task.vocab.decode(&task.translate_reference(&src).unwrap()));
    let batches = batches_by_length(&task.train, 1000, &mut StdRng::seed_from_u64(0));
    let pairs: usize = batches.iter().map(|b| b.len()).sum();
    let fit = batches.iter().all(|b| b.src.len() * b.src[0].len() <= 1000);
    println!("{pairs} pairs in {} batches, each within 1000 source tokens: {fit}",
        batches.len());
}
// Output:
// ta hund grando eka mirel pikke vidat
// 30000 pairs in 327 batches, each within 1000 source tokens: true
