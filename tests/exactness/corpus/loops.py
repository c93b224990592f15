"""for and while loops: break, continue, else, one-line loops, `while True`, nesting, loops as last statements."""


def first_negative(values):
    for value in values:
        if value < 0:
            break
    else:
        return None
    return value


def count_positive(values):
    count = 0
    for value in values:
        if value <= 0:
            continue
        count += 1
    return count


def one_line_for(values):
    total = 0
    for value in values: total += value
    return total


def one_line_while(n):
    while n > 0: n -= 3
    return n


def drain(stack):
    while stack:
        item = stack.pop()
        if item == "stop":
            break
    else:
        return "drained"
    return "stopped"


def forever(limit):
    steps = 0
    while True:
        steps += 1
        if steps >= limit:
            break
    return steps


def forever_with_return(items):
    position = 0
    while True:
        if items[position] == "x":
            return position
        position += 1


def continue_in_constant_while(text):
    letters = iter(text)
    while True:
        char = next(letters)
        if char == "t":
            continue
        found = char
        break
    return found


def while_one(limit):
    n = 0
    while 1:
        n += 1
        if n > limit:
            return n


def nested_breaks(grid):
    hits = 0
    for row in grid:
        for cell in row:
            if cell == 0:
                break
            if cell < 0:
                continue
            hits += 1
        else:
            hits += 100
    return hits


def loop_is_last(values, out):
    for value in values:
        out.append(value)


def while_is_last(n, out):
    while n:
        out.append(n)
        n -= 1


def for_if_else_for(items):
    if items:
        for item in items:
            marker = item
    else:
        marker = None
    return marker


def loop_in_branch(x):
    if x:
        for i in [3, 33]:
            x += i
    else:
        pass
    return x


def split_for(values):
    total = 0
    for (index,
         value) in enumerate(values):
        total += index * value
    return total


def computed_iterable(x, y):
    sizes = []
    for size in (x or ()) if y else ():
        sizes.append(size)
    return sizes


def loop_over_comprehension(pairs):
    firsts = []
    for pair in [p for p in pairs]:
        firsts.append(pair[0])
    return firsts


def while_else_no_break(n):
    while n > 0:
        n -= 1
    else:
        n = -1
    return n


def for_else_last(values, out):
    for value in values:
        if value:
            out.append(value)
            break
    else:
        out.append("none")


def never_called(values):
    for value in values:
        if value:
            return value
    return None


def exercise() -> None:
    first_negative([1, -2, 3])
    first_negative([])
    count_positive([0, 1, 2, -1])
    one_line_for([1, 2])
    one_line_for([])
    one_line_while(7)
    drain(["a", "stop", "b"])
    forever(3)
    forever_with_return(["a", "x"])
    continue_in_constant_while("ta")
    while_one(2)
    nested_breaks([[1, -1, 0], [2, 3]])
    loop_is_last([1, 2], [])
    while_is_last(2, [])
    for_if_else_for([0, 1])
    loop_in_branch(8)
    split_for([4, 5, 6])
    computed_iterable([5], True)
    computed_iterable([5], False)
    loop_over_comprehension([(1, 2), (3, 4)])
    while_else_no_break(2)
    for_else_last([0, 0], [])
    for_else_last([0, 3], [])
